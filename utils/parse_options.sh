#!/usr/bin/env bash
# Parse --option value pairs into the caller's shell variables (Kaldi's interface, our code).
#
# Source it after setting defaults:   foo_bar=1; . utils/parse_options.sh
#   --foo-bar 2  or  --foo_bar 2  or  --foo-bar=2   sets foo_bar=2
#   --config FILE                   sources FILE (name=value lines) first
#   --help / -h                     prints $help_message, then every option with its default and
#                                   comment, read from the caller's "name=default  # comment" lines
# An option with no matching variable fails, so a typo never passes silently. A variable whose
# default is true or false only takes true or false. Parsing stops at the first argument that
# is not an option; the rest stay in "$@".

__po_fail() { echo "$0: $*" >&2; exit 1; }
# The caller's own assignments above the line that sources this file are its options: listing
# them from the script itself keeps --help and the defaults from ever disagreeing.
__po_help() {
  printf '%s\n' "${help_message:-$0: no help message}"
  awk '/parse_options\.sh/ || /^help_message=/ { exit }
       /^# [A-Z][A-Za-z -]*$/ { section = substr($0, 3); pending = ""; next }
       /^# / { pending = pending (pending ? " " : "") substr($0, 3); next }
       /^[a-z_][a-z0-9_]*=/ {
         eq = index($0, "="); name = substr($0, 1, eq - 1); rest = substr($0, eq + 1)
         comment = pending; pending = ""
         if (match(rest, /[ \t]+# /)) { comment = substr(rest, RSTART + RLENGTH); rest = substr(rest, 1, RSTART - 1) }
         if (section != shown) { printf "%s:\n", section; shown = section }
         gsub(/_/, "-", name)
         printf "  --%-24s %-16s %s\n", name, rest, comment
         next
       }
       { pending = "" }' "$0"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      __po_help
      exit 0 ;;
    --=*|--) __po_fail "malformed option '$1'" ;;
    --*=*) __po_name="${1%%=*}"; __po_value="${1#*=}"; shift ;;
    --*)
      [ $# -ge 2 ] || __po_fail "option $1 needs a value"
      __po_name="$1"; __po_value="$2"; shift 2 ;;
    *) break ;;
  esac
  __po_var="${__po_name#--}"
  __po_var="${__po_var//-/_}"
  if [ "$__po_var" = config ]; then
    [ -f "$__po_value" ] || __po_fail "config file '$__po_value' does not exist"
    # shellcheck disable=SC1090
    . "$__po_value"
    continue
  fi
  case "$__po_var" in
    ''|[0-9]*|*[!A-Za-z0-9_]*) __po_fail "invalid option '$__po_name'" ;;
    __po_*) __po_fail "invalid option '$__po_name'" ;;
  esac
  if [ -z "${!__po_var+set}" ]; then
    __po_fail "unknown option '$__po_name' (see $0 --help)"
  fi
  case "${!__po_var}" in
    true|false)
      case "$__po_value" in
        true|false) ;;
        *) __po_fail "option $__po_name takes true or false, not '$__po_value'" ;;
      esac ;;
  esac
  printf -v "$__po_var" '%s' "$__po_value"
done
unset __po_name __po_value __po_var
unset -f __po_fail __po_help
true
