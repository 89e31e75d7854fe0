#!/bin/sh
# Generates gzipped man pages into ./manpages for the release archives.
set -eu
cd "$(dirname "$0")/.."
rm -rf manpages
go run ./scripts/gendocs -man manpages
gzip -9 -n manpages/*.1
