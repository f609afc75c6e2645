# fluxbridge — GitOps control plane for Flux v2.
SHELL := /bin/bash
.DEFAULT_GOAL := help

BIN ?= $(CURDIR)/bin
export GOFLAGS ?= -buildvcs=false

## help: list targets
.PHONY: help
help:
	@grep -hE '^## ' $(MAKEFILE_LIST) | sed 's/^## //' | column -t -s ':'

# Fragments for the kube test rig, Flux controllers, etc.
-include hack/*.mk
