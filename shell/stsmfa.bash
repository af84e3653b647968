# stsmfa shell integration for bash: MFA sessions in the current shell.
#
# Load it from ~/.bashrc:
#     eval "$(stsmfa init bash)"
#
#   stsmfa-use [PROFILE] [OPTION...]  export PROFILE's MFA session (cached, or asks for a
#                                     code) into this shell; OPTIONs go to `stsmfa env`,
#                                     e.g. stsmfa-use work --refresh
#   stsmfa-drop                       remove the session's variables from this shell
#   stsmfa_prompt [-v VAR]            print "aws:PROFILE 42m" ("aws:PROFILE expired" once
#                                     past expiry, nothing without a session), or store it
#                                     in VAR; it starts no process. The time left comes from
#                                     $STSMFA_EXPIRATION_EPOCH (Unix seconds, set by stsmfa
#                                     env and exec); without it, the profile alone
#
# The prompt segment is not added to your prompt by itself. Simplest:
#     PS1='\u@\h \w $(stsmfa_prompt)\$ '
# A $(...) subshell cannot remember that it has already warned about an expired session,
# so it warns at every prompt. To be warned once, compute the segment before each prompt:
#     PROMPT_COMMAND="stsmfa_prompt -v stsmfa_ps${PROMPT_COMMAND:+; $PROMPT_COMMAND}"
#     PS1='\u@\h \w ${stsmfa_ps:+$stsmfa_ps }\$ '

stsmfa-use() {
    local out
    out=$(command @STSMFA@ env "$@" --format sh) || return
    # A region stsmfa-use sets belongs to the session: stsmfa-drop (or the next
    # stsmfa-use without a region) removes it; a region set by the user stays.
    if [[ $out == *AWS_REGION* || $out == *AWS_DEFAULT_REGION* ]]; then
        _stsmfa_region=1
    elif [[ -n ${_stsmfa_region-} ]]; then
        unset AWS_REGION AWS_DEFAULT_REGION _stsmfa_region
    fi
    eval "$out"
}

stsmfa-drop() {
    unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_SECURITY_TOKEN \
        AWS_CREDENTIAL_EXPIRATION STSMFA_EXPIRATION_EPOCH STSMFA_PROFILE
    if [[ -n ${_stsmfa_region-} ]]; then
        unset AWS_REGION AWS_DEFAULT_REGION _stsmfa_region
    fi
}

stsmfa_prompt() {
    local _seg= _now _min _t=${STSMFA_EXPIRATION_EPOCH-}
    if [[ -n ${STSMFA_PROFILE-} ]]; then
        _seg="aws:$STSMFA_PROFILE"
        _now=${EPOCHSECONDS-}
        [[ -n $_now ]] || printf -v _now '%(%s)T' -1
        if [[ -z $_t || $_t == *[!0-9]* || ${#_t} -gt 12 ]]; then
            :   # no expiry known (an older stsmfa, or set by hand): the profile alone
        elif (( 10#$_t > _now )); then
            _min=$(( (10#$_t - _now + 59) / 60 ))
            if (( _min < 60 )); then
                _seg+=" ${_min}m"
            else
                printf -v _seg '%s %dh%02dm' "$_seg" $(( _min / 60 )) $(( _min % 60 ))
            fi
        else
            _seg+=" expired"
            if [[ ${_stsmfa_warned-} != "$STSMFA_PROFILE@$_t" ]]; then
                _stsmfa_warned=$STSMFA_PROFILE@$_t
                printf 'stsmfa: session for %s expired; run stsmfa-use %s\n' \
                    "$STSMFA_PROFILE" "$STSMFA_PROFILE" >&2
            fi
        fi
    fi
    if [[ ${1-} == -v && -n ${2-} ]]; then
        printf -v "$2" '%s' "$_seg"
    elif [[ -n $_seg ]]; then
        printf '%s' "$_seg"
    fi
    return 0
}
