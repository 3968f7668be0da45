#!/usr/bin/env bash
# Run the jointsid study, or its tests, from a fresh clone.
#
#   ./run_all.sh                          whole study on the default profile
#   ./run_all.sh --test [PYTEST ARGS]     install, then every test (incl. a smoke run of every notebook);
#                                         the fast loop, the unit tier: ./run_all.sh --test tests/unit
#   ./run_all.sh --profile smoke          another profile: smoke | default | paper
#   ./run_all.sh --only 01,03             chosen notebooks only (by number)
#   ./run_all.sh -p ids.codebook_size 32  a parameter override (repeatable), validated before anything runs;
#                                         the run gets its own folder, runs/default+ids.codebook_size=32/
#   ./run_all.sh --name NAME              the run's folder under runs/ (default: the profile, or profile+overrides)
#   ./run_all.sh --force                  execute every notebook, also those whose inputs did not change
#                                         (skipped by default: their executed copies in runs/ stand)
#
# Creates .venv/ when missing (an active conda env named "jointsid", built from environment.yml, is
# reused instead), installs the package with CPU torch pinned to 2.13.0, fetches the offline
# assets, then executes notebooks/NN_*.ipynb in order into runs/<folder>/notebooks/. Stage artifacts are
# shared by every run folder through runs/.store/ (python -m jointsid_utils.store du | prune).
set -euo pipefail
cd "$(dirname "$0")"

profile=default
only=""
mode=study
force=()
params=()
pytest_args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --test) mode=test; shift; pytest_args=("$@"); break ;;
    --profile) [[ $# -ge 2 ]] || { echo "error: --profile needs a name (smoke, default, paper)." >&2; exit 2; }
               profile="$2"; shift 2 ;;
    --only) [[ $# -ge 2 ]] || { echo "error: --only needs notebook numbers, e.g. --only 01,02." >&2; exit 2; }
            only="$2"; shift 2 ;;
    --force) force=(--force); shift ;;
    --name) [[ $# -ge 2 ]] || { echo "error: --name needs a folder name, e.g. --name codebook32." >&2; exit 2; }
            params+=(run_name "$2"); shift 2 ;;
    -p) [[ $# -ge 3 ]] || { echo "error: -p needs a KEY and a VALUE, e.g. -p seed 1." >&2; exit 2; }
        params+=("$2" "$3"); shift 3 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown option '$1'; see ./run_all.sh --help." >&2; exit 2 ;;
  esac
done

# 1. Environment: reuse an active conda env from environment.yml, else .venv/ in the repo.
if [[ "${CONDA_DEFAULT_ENV:-}" == "jointsid" ]]; then
  py=python
else
  if [[ ! -x .venv/bin/python ]]; then
    echo "==> creating .venv/"
    python3 -m venv .venv
  fi
  py=.venv/bin/python
fi

# 2. Install (skipped when pyproject.toml is unchanged since the last install).
stamp_dir=$($py -c 'import sys; print(sys.prefix)')
stamp="$stamp_dir/.jointsid-installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [[ ! -f "$stamp" ]]; then
  echo "==> installing (CPU torch pinned to 2.13.0; an open range would pull a multi-GB CUDA build)"
  $py -m pip install --quiet --disable-pip-version-check torch==2.13.0
  $py -m pip install --quiet --disable-pip-version-check -e ".[lab,test]"
  $py -m ipykernel install --sys-prefix --name jointsid --display-name "Python (jointsid)" >/dev/null
  rm -f "$stamp_dir"/.jointsid-installed-*
  touch "$stamp"
fi

# Threads and the libraries' environment are set in Python, by jointsid_utils.runtime.configure_runtime,
# which every entry point calls. Only what must exist before Python starts stays here: glibc reads its
# MALLOC_*_ settings once, when the interpreter starts.
# glibc's malloc: a training step frees and reallocates the same few MB of tensors; by default the large
# ones are mmap'd and unmapped every step and the heap top is trimmed, so each step faults its pages in
# again. A fixed mmap threshold (32 MiB, glibc's maximum), a high trim threshold and a top pad keep those
# pages mapped (about half the faults of a step on the 2-core VM). Speed only: the trained bytes are the
# same (docs/PERFORMANCE.md, "Levers that change no number").
export MALLOC_MMAP_THRESHOLD_="${MALLOC_MMAP_THRESHOLD_:-33554432}"
export MALLOC_TRIM_THRESHOLD_="${MALLOC_TRIM_THRESHOLD_:-268435456}"
export MALLOC_TOP_PAD_="${MALLOC_TOP_PAD_:-67108864}"

if [[ "$mode" == test ]]; then
  echo "==> test suite"
  set +e
  $py -m pytest "${pytest_args[@]}"
  rc=$?
  set -e
  [[ $rc -eq 5 ]] && { echo "error: pytest collected no tests." >&2; exit 1; }
  exit $rc
fi

# 3. Validate the profile and overrides before any work, then fetch assets and run the notebooks.
$py -m jointsid_utils.config "$profile" "${params[@]}" >/dev/null
p_args=()
for ((i = 0; i < ${#params[@]}; i += 2)); do p_args+=(-p "${params[i]}" "${params[i+1]}"); done
echo "==> offline assets for profile '$profile'"
$py -m jointsid_utils.assets fetch --profile "$profile" "${p_args[@]}"
echo "==> notebooks (profile '$profile')"
runner_args=(--profile "$profile" "${force[@]}" "${p_args[@]}")
[[ -n "$only" ]] && runner_args+=(--only "$only")
exec $py -m jointsid_utils.driver.runner "${runner_args[@]}"
