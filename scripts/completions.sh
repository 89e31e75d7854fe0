#!/bin/sh
# Generates shell completions into ./completions for the release archives.
set -eu
cd "$(dirname "$0")/.."
rm -rf completions
go run ./scripts/gendocs -completions completions
