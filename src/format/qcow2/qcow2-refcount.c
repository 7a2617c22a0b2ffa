/* qcow2-refcount.c - placeholder while the driver is written */
