#!/usr/bin/env sh
echo "hello from an env script: $*"
