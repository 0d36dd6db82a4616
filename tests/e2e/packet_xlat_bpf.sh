#!/usr/bin/env bash
# e2e: the packet path with [packet] engine = bpf: packet_xlat.sh again,
# the tc fast path in front of the NFQUEUE path (see its top).
PACKET_ENGINE=bpf exec bash "$(cd "$(dirname "$0")" && pwd)/packet_xlat.sh"
