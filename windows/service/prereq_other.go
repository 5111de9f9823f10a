//go:build !windows

package service

type notWindowsPrereq struct{}

// NativePrereq off Windows: every check fails saying the checks are for Windows nodes.
func NativePrereq() PrereqHost { return notWindowsPrereq{} }

func (notWindowsPrereq) WindowsBuild() (uint32, error)       { return 0, errNotWindows }
func (notWindowsPrereq) Service(string) (ServiceInfo, error) { return ServiceInfo{}, errNotWindows }
func (notWindowsPrereq) UDPPortInUse(int) (bool, error)      { return false, errNotWindows }
func (notWindowsPrereq) Elevated() (bool, error)             { return false, errNotWindows }
