#!/usr/bin/env python3
"""Runs the build stage of the Dockerfile outside Docker, step by step, because images cannot be
pulled here: ARG, ENV, WORKDIR, COPY and RUN of the stage named `builder`, in a scratch folder
standing for the image's file system, with /bin/sh as Docker would.

Two deliberate differences, printed when applied:
  - build arguments can be overridden (`--build-arg PROFILE=dev`: CI reuses its debug build
    instead of a 10-minute release build);
  - CARGO_TARGET_DIR is pointed at the repository's own target/ (`--target-dir`), so the
    dependencies are not compiled a second time.
Anything else in the stage (another instruction, COPY --from, an absolute COPY source) fails the
run rather than being skipped.

Usage: deploy/docker_steps.py [--build-arg K=V ...] [--target-dir DIR] [--keep]
"""

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def instructions(path):
    """(keyword, argument text) per instruction, continuation lines joined, comments dropped."""
    out, current = [], ""
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not current and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if current and line.lstrip().startswith("#"):
                continue
            if line.endswith("\\"):
                current += line[:-1] + " "
                continue
            current += line
            keyword, _, rest = current.strip().partition(" ")
            out.append((keyword.upper(), rest.strip()))
            current = ""
    return out


def substitute(text, env):
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), ""), text)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-arg", action="append", default=[])
    parser.add_argument("--target-dir", default=os.path.join(ROOT, "target"))
    parser.add_argument("--stage", default="builder")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    overrides = dict(a.split("=", 1) for a in args.build_arg)

    steps = instructions(os.path.join(ROOT, "Dockerfile"))
    global_args, stage, in_stage = {}, [], False
    for keyword, rest in steps:
        if keyword == "FROM":
            in_stage = rest.split()[-1] == args.stage and " AS " in rest.upper()
            continue
        if in_stage:
            stage.append((keyword, rest))
        elif keyword == "ARG" and not stage:
            name, _, default = rest.partition("=")
            global_args[name] = overrides.get(name, default)
    if not stage:
        sys.exit(f"docker_steps: no stage named {args.stage} in the Dockerfile")

    # One fixed folder per checkout, deleted at the end. cargo keys a package's artifacts by
    # name, version and profile, so the copy builds into the checkout's own `tienda` artifacts
    # (from the same sources): no second copy of a few hundred MB in target/.
    scratch = os.path.join(tempfile.gettempdir(),
                           "tienda-docker-steps-" + hashlib.sha256(ROOT.encode()).hexdigest()[:12])
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    for var in ("CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN", "CARGO_TERM_COLOR"):
        if var in os.environ:
            env[var] = os.environ[var]
    workdir = "/"
    try:
        for keyword, rest in stage:
            host_dir = os.path.join(scratch, workdir.lstrip("/"))
            if keyword == "ARG":
                name, _, default = rest.partition("=")
                env[name] = overrides.get(name, default)
                print(f"--> ARG {name}={env[name]}")
            elif keyword == "ENV":
                name, _, value = rest.partition("=")
                value = substitute(value.strip('"'), env)
                if name == "CARGO_TARGET_DIR":
                    print(f"--> ENV {name}={value}: using {args.target_dir} instead (shared build)")
                    value = args.target_dir
                else:
                    print(f"--> ENV {name}={value}")
                env[name] = value
            elif keyword == "WORKDIR":
                workdir = os.path.join(workdir, substitute(rest, env))
                os.makedirs(os.path.join(scratch, workdir.lstrip("/")), exist_ok=True)
                print(f"--> WORKDIR {workdir}")
            elif keyword == "COPY":
                parts = rest.split()
                if any(p.startswith("--") for p in parts):
                    sys.exit(f"docker_steps: unsupported COPY {rest}")
                *sources, dest = parts
                dest_host = os.path.join(host_dir, dest)
                for source in sources:
                    if source.startswith("/") or ".." in source:
                        sys.exit(f"docker_steps: COPY source outside the context: {source}")
                    src = os.path.join(ROOT, source)
                    if os.path.isdir(src):
                        shutil.copytree(src, dest_host.rstrip("/"), dirs_exist_ok=True)
                    else:
                        os.makedirs(dest_host if dest.endswith("/") else os.path.dirname(dest_host), exist_ok=True)
                        shutil.copy2(src, dest_host)
                print(f"--> COPY {rest}")
            elif keyword == "RUN":
                print(f"--> RUN {rest}", flush=True)
                subprocess.run(["/bin/sh", "-c", rest], cwd=host_dir, env=env, check=True)
            else:
                sys.exit(f"docker_steps: unsupported instruction {keyword} in stage {args.stage}")
        print(f"docker_steps: the {args.stage} stage ran outside Docker")
    finally:
        if args.keep:
            print(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
