//go:build windows

package service

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"
)

type nativePrereq struct{}

// NativePrereq is the real Windows host for the prerequisite checks.
func NativePrereq() PrereqHost { return nativePrereq{} }

func (nativePrereq) WindowsBuild() (uint32, error) {
	return windows.RtlGetVersion().BuildNumber, nil
}

func (nativePrereq) Service(name string) (ServiceInfo, error) {
	h, err := windows.OpenSCManager(nil, nil, windows.SC_MANAGER_CONNECT)
	if err != nil {
		return ServiceInfo{}, fmt.Errorf("connecting to the service control manager: %w", err)
	}
	m := &mgr.Mgr{Handle: h}
	defer m.Disconnect() //nolint:errcheck // nothing to do about it
	sh, err := windows.OpenService(h, windows.StringToUTF16Ptr(name), windows.SERVICE_QUERY_STATUS)
	if errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST) {
		return ServiceInfo{}, nil
	}
	if err != nil {
		return ServiceInfo{}, fmt.Errorf("opening service %s: %w", name, err)
	}
	s := &mgr.Service{Handle: sh, Name: name}
	defer s.Close() //nolint:errcheck // nothing to do about it
	st, err := s.Query()
	if err != nil {
		return ServiceInfo{}, fmt.Errorf("querying service %s: %w", name, err)
	}
	return ServiceInfo{Installed: true, Running: st.State == svc.Running}, nil
}

func (nativePrereq) UDPPortInUse(port int) (bool, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: port})
	if err == nil {
		return false, c.Close()
	}
	if errors.Is(err, syscall.Errno(windows.WSAEADDRINUSE)) || errors.Is(err, windows.WSAEACCES) {
		return true, nil
	}
	return false, fmt.Errorf("checking UDP %d: %w", port, err)
}

func (nativePrereq) Elevated() (bool, error) {
	return windows.GetCurrentProcessToken().IsElevated(), nil
}
