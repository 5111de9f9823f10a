package objutil

import "strings"

// UnknownPart returns what of stored (a JSON value decoded to map[string]any and friends) the known
// projection lacks, where known is the same value decoded through tortie's type and encoded again:
// whole keys missing from known (compared without case, as encoding/json decodes), and recursively
// the unknown parts of objects present in both. Lists are taken as a whole: an element's unknown
// fields cannot be matched to the element being written, so they are not carried. nil means nothing
// unknown.
func UnknownPart(stored, known any) any {
	sm, ok := stored.(map[string]any)
	if !ok {
		return nil
	}
	km, _ := known.(map[string]any)
	var out map[string]any
	for k, sv := range sm {
		kv, present := km[k]
		if !present {
			// encoding/json matches keys case-insensitively, so a stored "NATOutgoing" was read into
			// natOutgoing: it is known, and carrying it would bring back a value the update cleared.
			for kk, v := range km {
				if strings.EqualFold(kk, k) {
					kv, present = v, true
					break
				}
			}
		}
		var part any
		if !present {
			part = sv
		} else {
			part = UnknownPart(sv, kv)
		}
		if part == nil {
			continue
		}
		if out == nil {
			out = map[string]any{}
		}
		out[k] = part
	}
	if out == nil {
		return nil
	}
	return out
}

// MergeAbsent copies src into dst where dst has no value, descending into objects present in both.
// A value dst has, of whatever type, wins.
func MergeAbsent(dst, src map[string]any) {
	for k, sv := range src {
		dv, ok := dst[k]
		if !ok {
			dst[k] = sv
			continue
		}
		dm, dok := dv.(map[string]any)
		sm, sok := sv.(map[string]any)
		if dok && sok {
			MergeAbsent(dm, sm)
		}
	}
}
