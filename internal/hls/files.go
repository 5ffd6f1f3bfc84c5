package hls

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The files a packager writes, which the handler serves and Close removes.

// removeOwnFiles removes from dir what packagers write there.
func removeOwnFiles(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("hls: %w", err)
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !ownFile(name) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("hls: remove files: %w", err)
	}
	return nil
}

// ownFile reports whether name is one a packager writes, finished or not.
func ownFile(name string) bool {
	base := strings.TrimSuffix(name, ".tmp")
	return base == PlaylistName || base == "stream.sdp" || segmentName(base)
}

// segmentName reports whether name is a segment's: "seg-<hex>-<n>-<n>.ts".
func segmentName(name string) bool {
	rest, ok := strings.CutPrefix(name, "seg-")
	if !ok {
		return false
	}
	rest, ok = strings.CutSuffix(rest, ".ts")
	if !ok {
		return false
	}
	parts := strings.Split(rest, "-")
	if len(parts) != 3 || len(parts[0]) == 0 || len(parts[0]) > 32 {
		return false
	}
	for _, c := range parts[0] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	for _, n := range parts[1:] {
		if len(n) == 0 || len(n) > 10 {
			return false
		}
		for _, c := range n {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}
