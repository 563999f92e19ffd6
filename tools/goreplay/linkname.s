// An assembly file, empty on purpose: it lets objects.go declare unsafeNew without a body
// (the body is the runtime's, bound by go:linkname).
