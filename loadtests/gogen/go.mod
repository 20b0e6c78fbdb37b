module prakerja-intake/loadtests/gogen

go 1.24
