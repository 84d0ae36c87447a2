"""Measure the same thing on a baseline revision in the same run.

Figures from different runs (another day, another load on the machine) are not comparable; a ratio to a
baseline measured minutes apart on the same machine is. This module checks a baseline revision out
into a git worktree and runs Python there:

- `worktree(rev)` creates (or reuses) `.cache/bench/baseline-<shortsha>`, a detached worktree of `rev`
  (`git worktree add --detach`); `.cache/` is ignored by git. A reused worktree with local changes
  (a repository-wide search and replace reaches it too) is reset to `rev` first.
- `run_in(tree, argv)` runs `python *argv` with the venv's interpreter, `cwd=tree` and
  `PYTHONPATH=tree`: the project's packages (rules/, streams/, cidwatch/) are top-level folders, so
  the tree's own code is imported. The venv's editable install of the main checkout would still
  answer for any module the tree lacks (a baseline without `rules/cdr.py` would silently import the
  main checkout's), so the command runs through a small bootstrap that first removes that finder:
  in a tree, a module the tree does not have fails to import, as it should.

The bench scripts take `--baseline REV`; the default is `origin/main` if that ref exists, else `HEAD`
(so uncommitted work is measured against its last commit). Run `python bench/baseline.py [REV]` to
create the worktree and print its path; `git worktree remove PATH` deletes one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "bench"
PYTHON = sys.executable
# `python -c BOOTSTRAP ARGV...` behaves as `python ARGV...` (ARGV: `-m module ...`, `-c code ...` or
# `script ...`) without the editable-install finders, which map the project's packages to the main checkout.
BOOTSTRAP = """\
import runpy, sys
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
args = sys.argv[1:]
if args[:1] == ["-m"]:
    sys.argv = args[1:]
    runpy.run_module(args[1], run_name="__main__", alter_sys=True)
elif args[:1] == ["-c"]:
    sys.argv = ["-c", *args[2:]]
    exec(compile(args[1], "<string>", "exec"), {"__name__": "__main__"})
else:
    sys.argv = args
    runpy.run_path(args[0], run_name="__main__")
"""


def git(*args: str, repo: Path = REPO) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout.strip()


def default_rev(repo: Path = REPO) -> str:
    """`origin/main` if that ref exists, else `HEAD`."""
    try:
        git("rev-parse", "--verify", "--quiet", "origin/main^{commit}", repo=repo)
    except RuntimeError:
        return "HEAD"
    return "origin/main"


def resolve(rev: str, repo: Path = REPO) -> str:
    """The full commit id of `rev`."""
    return git("rev-parse", "--verify", f"{rev}^{{commit}}", repo=repo)


def worktree(rev: str, repo: Path = REPO) -> Path:
    """A detached worktree of `rev` under .cache/bench/baseline-<shortsha>, created once and reused."""
    sha = resolve(rev, repo)
    path = CACHE / f"baseline-{sha[:12]}"
    if (path / ".git").exists():
        try:
            head = git("rev-parse", "HEAD", repo=path)
        except RuntimeError:
            head = None
        if head != sha:
            raise RuntimeError(f"{path} exists but is not a worktree of {sha}; remove it "
                               f"(git worktree remove --force {path}) and run again")
        changed = git("status", "--porcelain", repo=path)
        if changed:
            # It lives inside the repository, so a repository-wide search and replace reaches it too.
            print(f"baseline worktree {path} had local changes ({len(changed.splitlines())} paths, e.g. "
                  f"{changed.splitlines()[0].strip()}); reset to {sha[:12]}", file=sys.stderr)
            git("reset", "--quiet", "--hard", sha, repo=path)
            git("clean", "--quiet", "-fd", repo=path)
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    git("worktree", "prune", repo=repo)  # forget worktrees whose folder was deleted by hand
    git("worktree", "add", "--detach", str(path), sha, repo=repo)
    return path


def python_command(argv: Sequence[str], isolate: bool = True) -> list[str]:
    """The venv's `python *argv`, through BOOTSTRAP when `isolate` (see the module docstring)."""
    return [PYTHON, "-c", BOOTSTRAP, *argv] if isolate else [PYTHON, *argv]


def run_in(tree: Path, argv: list[str], *, prefix: Sequence[str] = (), isolate: bool = True,
           **kwargs: Any) -> subprocess.CompletedProcess:
    """Run `python *argv` (the venv's interpreter) in `tree`, importing that tree's packages only.

    `argv` starts with `-m MODULE`, `-c CODE` or a script path. `prefix` goes before the interpreter
    (e.g. `/usr/bin/time -v`); other keyword arguments go to `subprocess.run` (default: text mode,
    output captured, no check).
    """
    env = dict(os.environ, PYTHONPATH=str(tree))
    options: dict[str, Any] = {"text": True, "capture_output": True, "check": False}
    options.update(kwargs)
    return subprocess.run([*prefix, *python_command(argv, isolate)], cwd=tree, env=env, **options)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Create (or reuse) the baseline worktree and print its path.")
    parser.add_argument("rev", nargs="?", help="revision (default: origin/main if it exists, else HEAD)")
    args = parser.parse_args()
    print(worktree(args.rev or default_rev()))


if __name__ == "__main__":
    main()
