#!/usr/bin/env bash
# Makes the Python environment that scores speech (PyPI `pesq`, ITU-T P.862/P.862.2) in
# target/speech-env, once. The interop tests that score calls use its python.
set -euo pipefail
cd "$(dirname "$0")/.."
env=target/speech-env
if [ -x "$env/bin/python" ] && "$env/bin/python" -c "import pesq, numpy, scipy" 2>/dev/null; then
  exit 0
fi
rm -rf "$env"
python3 -m venv "$env"
"$env/bin/pip" install --quiet --disable-pip-version-check numpy==2.4.6 scipy==1.17.1
# pesq builds from source: a C compiler and python3-dev.
"$env/bin/pip" install --quiet --disable-pip-version-check pesq==0.0.4
"$env/bin/python" -c "import pesq, numpy, scipy"
