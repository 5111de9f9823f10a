package cni

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Token is a service-account token and its validity.
type Token struct {
	Value string
	// IssuedAt and Expires are zero when unknown (a legacy token without claims never expires).
	IssuedAt, Expires time.Time
}

// RenewAt is when the token should be replaced: once two thirds of its lifetime have passed. The zero
// time means never.
func (t Token) RenewAt() time.Time {
	if t.Expires.IsZero() {
		return time.Time{}
	}
	if t.IssuedAt.IsZero() || !t.IssuedAt.Before(t.Expires) {
		return t.Expires.Add(-10 * time.Minute)
	}
	return t.IssuedAt.Add(t.Expires.Sub(t.IssuedAt) * 2 / 3)
}

// TokenSource hands out tokens for the CNI kubeconfig.
type TokenSource interface {
	// Token returns a token valid now. Implementations may return the same token until it needs
	// renewing.
	Token(ctx context.Context) (Token, error)
	// String names the source for messages.
	String() string
}

// FileTokenSource reads the token the kubelet projects into the pod (and renews in place).
type FileTokenSource struct{ Path string }

// Token reads the file.
func (s FileTokenSource) Token(context.Context) (Token, error) {
	b, err := os.ReadFile(s.Path)
	if err != nil {
		return Token{}, fmt.Errorf("reading the service-account token %s: %w", s.Path, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return Token{}, fmt.Errorf("the service-account token %s is empty", s.Path)
	}
	t := Token{Value: v}
	t.IssuedAt, t.Expires = jwtTimes(v)
	return t, nil
}

func (s FileTokenSource) String() string { return "token file " + s.Path }

// RequestTokenSource asks the API server for a token of a service account (TokenRequest), so that the
// CNI plugin runs as its own, least-privileged account and its token does not die with the agent's pod.
type RequestTokenSource struct {
	Client             kubernetes.Interface
	Namespace, Account string
	// Lifetime requested; the API server may shorten it. 0 means 24h.
	Lifetime time.Duration
}

// Token creates a new token.
func (s RequestTokenSource) Token(ctx context.Context) (Token, error) {
	life := s.Lifetime
	if life <= 0 {
		life = 24 * time.Hour
	}
	secs := int64(life / time.Second)
	tr, err := s.Client.CoreV1().ServiceAccounts(s.Namespace).CreateToken(ctx, s.Account,
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &secs}}, metav1.CreateOptions{})
	if err != nil {
		return Token{}, fmt.Errorf("requesting a token for service account %s/%s (needs create on serviceaccounts/token): %w",
			s.Namespace, s.Account, err)
	}
	t := Token{Value: tr.Status.Token, Expires: tr.Status.ExpirationTimestamp.Time}
	if iat, exp := jwtTimes(tr.Status.Token); !iat.IsZero() {
		t.IssuedAt = iat
		if t.Expires.IsZero() {
			t.Expires = exp
		}
	}
	if t.Value == "" {
		return Token{}, errors.New("requesting a token for service account " + s.Namespace + "/" + s.Account + ": the API server returned an empty token")
	}
	return t, nil
}

func (s RequestTokenSource) String() string {
	return fmt.Sprintf("TokenRequest for service account %s/%s", s.Namespace, s.Account)
}

// jwtTimes reads the iat and exp claims of a JWT without verifying it (the API server does that); zero
// times when the token is not a JWT or lacks them.
func jwtTimes(tok string) (iat, exp time.Time) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return
	}
	var claims struct {
		IAT *float64 `json:"iat"`
		EXP *float64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return
	}
	if claims.IAT != nil {
		iat = time.Unix(int64(*claims.IAT), 0)
	}
	if claims.EXP != nil {
		exp = time.Unix(int64(*claims.EXP), 0)
	}
	return
}
