//go:build !unix

package auth

import "testing"

// reportCPU reports nothing where getrusage is missing.
func reportCPU(b *testing.B) { b.Helper() }
