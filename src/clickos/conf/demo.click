// The demo: a small router on generated traffic.
// A source builds 60-byte Ethernet/IPv4/UDP frames; a Classifier keeps IPv4;
// one path counts and rate-limits through a queue, the other is measured flat out.
define($BURST 256, $LIMIT 10000000)

src :: InfiniteSource(DATA \<02000000000202000000000108004500002e0000000040111489c6336401cb00710104d21388001a0000000000000000000000000000000000000000>,
                      LIMIT $LIMIT, BURST $BURST, STOP true)
  -> cls :: Classifier(12/0800, -)
  -> in :: Counter
  -> t :: Tee(2)
  -> ac :: AverageCounter
  -> Discard;

t[1] -> q :: Queue(1000)
     -> shaped :: RatedUnqueue(1000)
     -> out :: Counter
     -> Discard;

cls[1] -> other :: Counter -> Discard;
