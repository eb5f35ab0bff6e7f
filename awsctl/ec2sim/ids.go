package ec2sim

import (
	"math/rand/v2"
	"strconv"
)

// idSource issues EC2-style instance ids ("i-" and 17 lowercase hex
// digits) and private IPs. Ids look random but come from a bijection of the
// launch sequence number keyed by the seed, so they never repeat and need no
// set of ids issued so far.
type idSource struct {
	key  uint64
	lead byte // the 17th hex digit, fixed per sim
}

func newIDSource(r *rand.Rand) idSource {
	return idSource{key: r.Uint64(), lead: "0123456789abcdef"[r.IntN(16)]}
}

// instanceID returns the id of the seq-th instance.
func (g idSource) instanceID(seq uint64) string {
	x := mix(seq + g.key)
	var b [19]byte
	b[0], b[1], b[2] = 'i', '-', g.lead
	const hex = "0123456789abcdef"
	for i := 18; i >= 3; i-- {
		b[i] = hex[x&0xf]
		x >>= 4
	}
	return string(b[:])
}

// mix is the SplitMix64 finaliser; each step is invertible, so distinct
// inputs give distinct outputs.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// privateIP returns the seq-th address of 10.0.0.0/8, skipping the network
// address and the three AWS reserves at the start of a subnet. Addresses are
// unique for the first 16,777,211 launches.
func privateIP(seq uint64) string {
	const first, count = 4, 1<<24 - 5 // last address is the broadcast one
	a := first + seq%count
	b := make([]byte, 0, 15)
	b = append(b, "10."...)
	b = strconv.AppendUint(b, a>>16, 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, a>>8&0xff, 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, a&0xff, 10)
	return string(b)
}
