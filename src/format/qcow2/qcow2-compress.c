/* qcow2-compress.c - placeholder while the driver is written */
