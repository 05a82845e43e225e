/* timeutil.h: clocks in microseconds. Any thread. */
#pragma once

#include <stdint.h>

#define USEC_PER_SEC 1000000ULL
#define USEC_PER_MSEC 1000ULL

/* CLOCK_MONOTONIC: for intervals, deadlines and rates. */
uint64_t now_usec(void);
/* CLOCK_REALTIME: for times stored on disk or shown to people. */
uint64_t now_realtime_usec(void);
