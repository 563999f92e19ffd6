module heaplab/goreplay

go 1.19
