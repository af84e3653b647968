# stsmfa shell integration for PowerShell: MFA sessions in the current session.
#
# Load it from your profile ($PROFILE):
#     Invoke-Expression (& stsmfa init powershell | Out-String)
#
#   stsmfa-use [PROFILE] [OPTION...]  put PROFILE's MFA session (cached, or asks for a
#                                     code) into $env:; OPTIONs go to `stsmfa env`,
#                                     e.g. stsmfa-use work --refresh. On failure
#                                     $LASTEXITCODE is stsmfa's exit code.
#   stsmfa-drop                       remove the session's variables
#   Get-StsmfaPrompt                  "aws:PROFILE 42m" ("aws:PROFILE expired" once past
#                                     expiry, warning once; '' without a session). The
#                                     time left comes from $env:STSMFA_EXPIRATION_EPOCH
#                                     (Unix seconds, set by stsmfa env and exec); without
#                                     it, the profile alone
#
# The prompt segment is not added to your prompt by itself, e.g.:
#     function prompt { "$(Get-StsmfaPrompt) PS $($executionContext.SessionState.Path.CurrentLocation)> " }
#
# Works with Windows PowerShell 5.1 and PowerShell 7.

# Kept across a reload of the profile, so that stsmfa-drop still knows about the region.
if (-not (Get-Variable _StsmfaRegion -Scope Global -ErrorAction SilentlyContinue)) {
    $global:_StsmfaRegion = $false
}
$global:_StsmfaWarned = ''

function stsmfa-use {
    $out = & @STSMFA@ env @args --format powershell
    if ($LASTEXITCODE -ne 0) { return }
    $text = @($out) -join "`n"
    # A region stsmfa-use sets belongs to the session: stsmfa-drop (or the next
    # stsmfa-use without a region) removes it; a region set by the user stays.
    if ($text -match '\bAWS_(DEFAULT_)?REGION\b') {
        $global:_StsmfaRegion = $true
    } elseif ($global:_StsmfaRegion) {
        Remove-Item 'Env:AWS_REGION', 'Env:AWS_DEFAULT_REGION' -ErrorAction SilentlyContinue
        $global:_StsmfaRegion = $false
    }
    if ($text) { Invoke-Expression $text }
}

function stsmfa-drop {
    foreach ($v in @('AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN',
                     'AWS_SECURITY_TOKEN', 'AWS_CREDENTIAL_EXPIRATION', 'STSMFA_EXPIRATION_EPOCH',
                     'STSMFA_PROFILE')) {
        Remove-Item "Env:$v" -ErrorAction SilentlyContinue
    }
    if ($global:_StsmfaRegion) {
        Remove-Item 'Env:AWS_REGION', 'Env:AWS_DEFAULT_REGION' -ErrorAction SilentlyContinue
        $global:_StsmfaRegion = $false
    }
}

function Get-StsmfaPrompt {
    $name = $env:STSMFA_PROFILE
    if (-not $name) { return '' }
    # No expiry known (an older stsmfa, or set by hand): the profile alone.
    $until = [string]$env:STSMFA_EXPIRATION_EPOCH
    if ($until -notmatch '\A[0-9]{1,12}\z') { return "aws:$name" }
    # Now in Unix seconds from DateTime ticks (100 ns since 0001-01-01; the Unix epoch is
    # tick 621355968000000000): ToUnixTimeSeconds needs .NET Framework 4.6.
    $left = [long]$until - ([DateTime]::UtcNow.Ticks - 621355968000000000) / 1e7
    if ($left -gt 0) {
        $min = [int][Math]::Ceiling($left / 60)
        if ($min -lt 60) { return "aws:$name ${min}m" }
        return ('aws:{0} {1}h{2:D2}m' -f $name, [int][Math]::Floor($min / 60), [int]($min % 60))
    }
    $key = "$name@$until"
    if ($global:_StsmfaWarned -ne $key) {
        $global:_StsmfaWarned = $key
        [Console]::Error.WriteLine("stsmfa: session for $name expired; run stsmfa-use $name")
    }
    return "aws:$name expired"
}
