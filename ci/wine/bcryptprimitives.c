/*
 * Stand-in for Windows' bcryptprimitives.dll, which Wine 8 lacks.
 *
 * Go's Windows runtime (since Go 1.22) loads ProcessPrng from
 * system32\bcryptprimitives.dll at start and dies without it. This DLL
 * exports only that function and fills the buffer from advapi32's
 * SystemFunction036 (RtlGenRandom), which takes a ULONG length, hence the
 * chunks. ci/wine.sh builds it with mingw-w64 and copies it into the wine
 * prefix's system32; it is for running test binaries under wine only.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	while (len > 0) {
		ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
		if (!SystemFunction036(data, n))
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}
