//go:build slurmrun_fwdsig && linux && (amd64 || arm64)

package container

import _ "unsafe" // for go:linkname

// The Go runtime replaces most inherited signal dispositions and unblocks
// the signals it needs before any Go code runs; only its own record keeps
// what slurmrun was started with: fwdSig, each signal's disposition when
// the runtime took it over, and initSigmask, the mask of the first thread.
// Reading them needs -ldflags=-checklinkname=0, which `make build` passes
// with this tag. TestRuntimeSignalRecord fails when a toolchain changes
// what these say.
//
//go:linkname fwdSig runtime.fwdSig
var fwdSig [65]uintptr

//go:linkname initSigmask runtime.initSigmask
var initSigmask [2]uint32

const runtimeRecordAvailable = true

// runtimeSignalRecord reports the ignored set and mask the runtime recorded.
func runtimeSignalRecord() (ignored, blocked uint64, ok bool) {
	for sig := 1; sig <= 64; sig++ {
		if fwdSig[sig] == sigIgn {
			ignored |= 1 << (sig - 1)
		}
	}
	return ignored, uint64(initSigmask[0]) | uint64(initSigmask[1])<<32, true
}
