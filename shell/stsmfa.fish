# stsmfa shell integration for fish: MFA sessions in the current shell.
#
# Load it from ~/.config/fish/config.fish:
#     stsmfa init fish | source
#
#   stsmfa-use [PROFILE] [OPTION...]  export PROFILE's MFA session (cached, or asks for a
#                                     code) into this shell; OPTIONs go to `stsmfa env`,
#                                     e.g. stsmfa-use work --refresh
#   stsmfa-drop                       remove the session's variables from this shell
#   stsmfa_prompt                     print "aws:PROFILE 42m" ("aws:PROFILE expired" once
#                                     past expiry, warning once; nothing without a session).
#                                     The time left comes from $STSMFA_EXPIRATION_EPOCH (Unix
#                                     seconds, set by stsmfa env and exec); without it, the
#                                     profile alone
#
# The prompt segment is not added to your prompt by itself, e.g.:
#     function fish_right_prompt; stsmfa_prompt; end
#
# fish has no builtin that reads the clock. On Linux stsmfa_prompt starts no process: it
# adds /proc/uptime (read with the `read` builtin) to the boot time, which is measured
# once with `date` (by stsmfa-use, or by the first prompt of a shell that already had a
# session). Elsewhere it runs `date +%s` once per prompt while a session is loaded.

function stsmfa-use --description 'Load an MFA session from stsmfa into this shell'
    set -l out (command @STSMFA@ env $argv --format fish)
    or return
    # A region stsmfa-use sets belongs to the session: stsmfa-drop (or the next
    # stsmfa-use without a region) removes it; a region set by the user stays.
    if string match -qr '\bAWS_(DEFAULT_)?REGION\b' -- $out
        set -g _stsmfa_region 1
    else if set -q _stsmfa_region
        set -e -g AWS_REGION
        set -e -g AWS_DEFAULT_REGION
        set -e -g _stsmfa_region
    end
    printf '%s\n' $out | source
    # `set -x` without -g, sourced here, would make a variable local to this function.
    for v in AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN \
            AWS_CREDENTIAL_EXPIRATION STSMFA_EXPIRATION_EPOCH STSMFA_PROFILE \
            AWS_REGION AWS_DEFAULT_REGION
        set -q -l $v; and set -gx $v $$v
    end
    _stsmfa_clock
    return 0
end

function stsmfa-drop --description 'Remove the stsmfa session from this shell'
    for v in AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_SECURITY_TOKEN \
            AWS_CREDENTIAL_EXPIRATION STSMFA_EXPIRATION_EPOCH STSMFA_PROFILE
        set -e -g $v
    end
    if set -q _stsmfa_region
        set -e -g AWS_REGION
        set -e -g AWS_DEFAULT_REGION
        set -e -g _stsmfa_region
    end
end

# Boot time in epoch seconds (now minus /proc/uptime), for _stsmfa_now.
function _stsmfa_clock
    test -r /proc/uptime; and command -q date; or return 1
    read -l up idle </proc/uptime
    set -g _stsmfa_boot (math (date +%s) - $up)
end

function _stsmfa_now
    if test -r /proc/uptime
        set -q _stsmfa_boot; or _stsmfa_clock; or return 1
        read -l up idle </proc/uptime
        math -s0 "floor($_stsmfa_boot + $up)"
    else if command -q date
        date +%s
    end
end

function stsmfa_prompt --description 'Print the stsmfa session for a prompt: aws:PROFILE 42m'
    test -n "$STSMFA_PROFILE"; or return 0
    set -l seg aws:$STSMFA_PROFILE
    set -l until "$STSMFA_EXPIRATION_EPOCH"
    set -l now
    # No expiry known (an older stsmfa, or set by hand): the profile alone.
    string match -qr '\A[0-9]{1,12}\z' -- "$until"; and set now (_stsmfa_now)
    if test -n "$now"
        if test $until -gt $now
            set -l min (math "ceil(($until - $now) / 60)")
            if test $min -lt 60
                set seg "$seg $min"m
            else
                set seg (printf '%s %dh%02dm' $seg (math "floor($min / 60)") (math "$min % 60"))
            end
        else
            set seg "$seg expired"
            if test "$_stsmfa_warned" != "$STSMFA_PROFILE@$until"
                set -g _stsmfa_warned "$STSMFA_PROFILE@$until"
                printf 'stsmfa: session for %s expired; run stsmfa-use %s\n' \
                    $STSMFA_PROFILE $STSMFA_PROFILE >&2
            end
        end
    end
    printf '%s' $seg
end
