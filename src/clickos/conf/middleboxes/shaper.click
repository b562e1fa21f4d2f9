define($RATE 1Gbps, $CAPACITY 1024);
FromDevice(0) -> q :: Queue($CAPACITY) -> shape :: BandwidthRatedUnqueue($RATE) -> ToDevice(1);
ScheduleInfo(shape 32);
