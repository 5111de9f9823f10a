package cni

import (
	"context"
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/ipam"
)

// Error codes. 1–99 are the CNI specification's (SPEC.md "Error"); 100 and up are tortie's own.
// The runtime acts on some of them: 3 means "nothing to clean up", 11 means "retry later", 50/51 are
// STATUS answers.
const (
	CodeIncompatibleVersion = types.ErrIncompatibleCNIVersion      // 1
	CodeUnsupportedField    = types.ErrUnsupportedField            // 2: names the key and its value
	CodeUnknownContainer    = types.ErrUnknownContainer            // 3
	CodeInvalidEnvironment  = types.ErrInvalidEnvironmentVariables // 4: CNI_* variables, CNI_ARGS
	CodeIOFailure           = types.ErrIOFailure                   // 5
	CodeDecodingFailure     = types.ErrDecodingFailure             // 6
	CodeInvalidConfig       = types.ErrInvalidNetworkConfig        // 7: names the key and the fix
	CodeTryAgainLater       = types.ErrTryAgainLater               // 11: datastore down, not ready, lock busy
	CodePluginNotAvailable  = types.ErrPluginNotAvailable          // 50: STATUS; also every command off Linux
	CodeInternal            = types.ErrInternal                    // 999

	// CodeCheckFailed: CHECK found the attachment differs from what ADD built (interface, address,
	// route or IPAM allocation missing). The message lists every difference.
	CodeCheckFailed uint = 100
	// CodeIPAMFailed: IPAM could not allocate (no pool qualifies, pool exhausted, an annotation asks
	// for something impossible, an address is taken).
	CodeIPAMFailed uint = 101
	// CodeDataplaneFailed: the pod's interface could not be set up or torn down.
	CodeDataplaneFailed uint = 102
	// CodeDatastoreFailed: the datastore refused a write for a reason that retrying will not fix.
	CodeDatastoreFailed uint = 103
)

// Errorf returns a *types.Error with code and a message; details are optional context.
func Errorf(code uint, format string, args ...any) *types.Error {
	return &types.Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// invalidConfig is a code-7 error about one netconf key: what is wrong and how to fix it.
func invalidConfig(key, format string, args ...any) *types.Error {
	return &types.Error{Code: CodeInvalidConfig, Msg: fmt.Sprintf("invalid network configuration: %q ", key) + fmt.Sprintf(format, args...)}
}

// unsupportedField is a code-2 error: the key is understood but tortie cannot honour its value.
func unsupportedField(key string, value any, fix string) *types.Error {
	return &types.Error{Code: CodeUnsupportedField,
		Msg: fmt.Sprintf("unsupported network configuration field %q=%v: %s", key, value, fix)}
}

// AsError turns err into a *types.Error. An error that already is (or wraps) one keeps its code, with
// the outer context prepended; datastore and context errors that a retry may fix become code 11; any
// other error gets fallback.
func AsError(err error, fallback uint) *types.Error {
	if err == nil {
		return nil
	}
	if te, ok := err.(*types.Error); ok { //nolint:errorlint // the error itself, not one it wraps
		return te
	}
	var te *types.Error
	if errors.As(err, &te) {
		return &types.Error{Code: te.Code, Msg: err.Error(), Details: te.Details}
	}
	if Transient(err) {
		return &types.Error{Code: CodeTryAgainLater, Msg: err.Error()}
	}
	return &types.Error{Code: fallback, Msg: err.Error()}
}

// Transient reports whether err is worth retrying later: a timeout, or a datastore that could not be
// reached or kept conflicting. Not-found, already-exists and validation errors are not transient.
func Transient(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, datastore.ErrConflict), errors.Is(err, ipam.ErrRetriesExhausted):
		return true
	case errors.Is(err, errUnreachable):
		return true
	}
	return false
}

// errUnreachable marks datastore errors that mean "could not talk to it" (as opposed to "it said no").
var errUnreachable = errors.New("datastore unreachable")

// unreachable wraps err so that Transient reports it.
func unreachable(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w (%w)", err, errUnreachable)
}
