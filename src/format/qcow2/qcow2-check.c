/* qcow2-check.c - placeholder while the driver is written */
