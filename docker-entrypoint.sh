#!/bin/sh
# The image's entry point. With no arguments or with flags it runs northflank-build; given a
# command (GitLab's shell, Jenkins' `cat`, Azure's and Buildkite's own) it runs that command, so
# no CI system needs to override the entry point. exec keeps the program PID 1, to get signals.
case "${1-}" in
  "" | -*) set -- northflank-build "$@" ;;
esac
exec "$@"
