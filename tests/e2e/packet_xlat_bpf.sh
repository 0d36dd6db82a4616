#!/usr/bin/env bash
# e2e: the packet path with [packet] engine = bpf: packet_xlat.sh again,
# the tc fast path in front of the NFQUEUE path (see its top), with
# user = nobody: worker 0 loads the program after the privilege change,
# holding CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF and CAP_PERFMON only.
PACKET_ENGINE=bpf PACKET_USER=nobody exec bash "$(cd "$(dirname "$0")" && pwd)/packet_xlat.sh"
