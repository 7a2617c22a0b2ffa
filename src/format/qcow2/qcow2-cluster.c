/* qcow2-cluster.c - placeholder while the driver is written */
