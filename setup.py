"""Only the compiled part of the build (the rest is in pyproject.toml): the
framers' C scan. `optional`: without a compiler the install still succeeds
and the framers use their pure-Python scan (the tcp worker logs which)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("tcp_worker.framings._scan", ["tcp_worker/framings/_scan.c"],
                             extra_compile_args=["-O2", "-Wall", "-Wextra"],
                             optional=True)])
