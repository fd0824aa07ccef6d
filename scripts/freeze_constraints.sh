#!/usr/bin/env bash
# Regenerate constraints.txt from the working .venv: exact name==version pins of everything installed,
# except the project itself. Refuses any line pip records as a path or URL (`name @ file://…`), which
# would only install on the machine that wrote it: install such a package from the registry first.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
# A local version label (torch 2.13.0+cpu) is not a registry version; ==2.13.0 still selects that build.
frozen=$("$VENV/bin/pip" freeze --exclude-editable --exclude radnet-spark | sed -E "s/^([^=]+==[^+]+)\+.*$/\1/")
if bad=$(grep -v -E '^[A-Za-z0-9][A-Za-z0-9._-]*==[^ @]+$' <<<"$frozen"); then
    echo "freeze_constraints: these are not registry pins; reinstall them from the registry:" >&2
    echo "$bad" >&2
    exit 1
fi
{
    echo "# Exact versions tested together on Python 3.11 (CPU), each a name==version the registry serves."
    echo "# Regenerate with scripts/freeze_constraints.sh (it refuses local paths and URLs)."
    echo "$frozen"
} > constraints.txt
echo "constraints.txt: $(grep -c '==' constraints.txt) pins"
