#!/usr/bin/env bash
# Sourced by test.sh and up.sh: ensure venv/ holds the pinned packages of the requirements file "$1",
# reinstalling only when that file changed since the last install.
requirements="$1"
marker="venv/.installed-$(basename "$requirements")"
if [ ! -x venv/bin/python ] || ! cmp -s "$requirements" "$marker"; then
  python3 -m venv venv
  venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$marker"
fi
