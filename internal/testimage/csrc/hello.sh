#!/bin/sh
echo "hello from a /bin/sh script: $*"
