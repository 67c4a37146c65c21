//go:build slurmrun_fwdsig && linux && (amd64 || arm64)

package container

import _ "unsafe" // for go:linkname

// The runtime's record of the signal state slurmrun started with: each
// signal's disposition, and the mask. Reading them needs
// -ldflags=-checklinkname=0, which `make build` passes with this tag.
//
//go:linkname fwdSig runtime.fwdSig
var fwdSig [65]uintptr

//go:linkname initSigmask runtime.initSigmask
var initSigmask [2]uint32

// runtimeSignalRecord reports the inherited ignored set and mask from the
// runtime's own record.
func runtimeSignalRecord() (ignored, blocked uint64, ok bool) {
	const sigIgn = 1
	for sig := 1; sig <= 64; sig++ {
		if fwdSig[sig] == sigIgn {
			ignored |= 1 << (sig - 1)
		}
	}
	return ignored, uint64(initSigmask[0]) | uint64(initSigmask[1])<<32, true
}
