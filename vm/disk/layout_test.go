package disk

import "testing"

func FuzzLayoutOf(f *testing.F) {
	bios, _ := mbrSector([512]byte{}, partition{typ: partTypeTFS, start: 12800, size: BootFSSize}, partition{typ: partTypeTFS, start: 12800 + BootFSSize, size: 1 << 20})
	direct, _ := directBootSector(4608, 1<<20)
	f.Add(bios[:])
	f.Add(direct[:])
	f.Add([]byte("NVMTFS"))
	f.Fuzz(func(t *testing.T, s []byte) {
		l, err := layoutOf("disk", s)
		if err == nil && l != LayoutBIOS && l != LayoutDirect {
			t.Fatalf("layout %v", l)
		}
	})
}
