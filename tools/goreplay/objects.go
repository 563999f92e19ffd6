// objects.go owns how the replay's objects are made on Go's heap: one Go type per distinct
// (pointer slots, size) pair of the program, built with reflect before timing, and the
// allocation itself, which is Go's own mallocgc reached the way reflect.New reaches it.
//
// Layout of an object of `size` bytes with `ptrs` pointer slots (ReplayOp.swift's gcAlloc):
//
//	ptrs == 0             [size]byte                          noscan: no pointer bitmap
//	ptrs * 8 == size      [ptrs]unsafe.Pointer
//	otherwise             struct{ P [ptrs]unsafe.Pointer; D [size - 8*ptrs]byte }
//
// so the collector scans exactly the pointer slots, and stores into them are typed
// unsafe.Pointer stores (write barrier). A struct's size rounds up to 8 bytes; every Go size
// class is a multiple of 8, so the size class is the one the byte size asks for.
//
// Invariants: typeTable.types[i] is the *rtype of typeTable.keep[i] (kept reachable here for
// the whole run); a type index never changes once given; typeFor is only called before
// timing (it uses a Go map and reflect's caches, both on Go's heap).
package main

import (
	"reflect"
	"unsafe"
)

// unsafeNew is reflect.unsafe_New, which the runtime implements as
// mallocgc(typ.size, typ, true): an allocation of one value of type typ, zeroed, exactly as
// `new(T)` compiles. Called directly, it skips reflect.New's pointer-type lookup (a sync.Map
// read for types made by reflect.StructOf and ArrayOf), which is harness cost, not allocator
// cost.
//
//go:linkname unsafeNew reflect.unsafe_New
func unsafeNew(typ unsafe.Pointer) unsafe.Pointer

type typeKey struct{ ptrs, size uint64 }

type typeTable struct {
	index map[typeKey]uint32
	types []unsafe.Pointer
	keep  []reflect.Type
}

var (
	byteType    = reflect.TypeOf(byte(0))
	pointerType = reflect.TypeOf(unsafe.Pointer(nil))
)

func newTypeTable() *typeTable { return &typeTable{index: map[typeKey]uint32{}} }

// goType is the type of an object of `size` bytes whose first `ptrs` words are pointers.
func goType(ptrs, size uint64) reflect.Type {
	switch {
	case ptrs == 0:
		return reflect.ArrayOf(int(size), byteType)
	case ptrs*8 == size:
		return reflect.ArrayOf(int(ptrs), pointerType)
	default:
		return reflect.StructOf([]reflect.StructField{
			{Name: "P", Type: reflect.ArrayOf(int(ptrs), pointerType)},
			{Name: "D", Type: reflect.ArrayOf(int(size-8*ptrs), byteType)},
		})
	}
}

// typeFor returns the index of the type for (ptrs, size), making it on first use.
func (t *typeTable) typeFor(ptrs, size uint64) uint32 {
	k := typeKey{ptrs, size}
	if i, ok := t.index[k]; ok {
		return i
	}
	rt := goType(ptrs, size)
	i := uint32(len(t.types))
	t.index[k] = i
	t.keep = append(t.keep, rt)
	t.types = append(t.types, rtypeOf(rt))
	return i
}

// rtypeOf is the runtime type descriptor behind a reflect.Type (the data word of the
// interface value: reflect's *rtype).
func rtypeOf(t reflect.Type) unsafe.Pointer {
	return (*[2]unsafe.Pointer)(unsafe.Pointer(&t))[1]
}
