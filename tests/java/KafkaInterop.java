// The Java client, Kafka's reference implementation, on the other end of pktstream's messages.
//
// Compiled at test time against the cached kafka-clients jar (tests/test_kafka_java.py). One JVM
// run does a whole batch of work, because a JVM start costs seconds here. Bytes travel as base64
// ("-" for null) in tab-separated lines, so nothing is decoded or re-encoded on the way.
//
//   consume BOOTSTRAP TOPIC...  every message of each topic, from the beginning to the end offsets
//                               seen at start: topic partition offset key value headers javaPartition
//                               (headers: name=value,... ; javaPartition: the default partitioner's
//                               choice for the key among the topic's partitions, -1 without a key)
//   produce BOOTSTRAP           stdin lines "topic codec key value headers"; one producer per codec
//                               (compression.type); prints "topic partition offset" in input order

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Future;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class KafkaInterop {
    private static final Base64.Encoder B64 = Base64.getEncoder();
    private static final Base64.Decoder UNB64 = Base64.getDecoder();

    public static void main(String[] args) throws Exception {
        if (args.length >= 2 && args[0].equals("consume")) {
            consume(args[1], java.util.Arrays.copyOfRange(args, 2, args.length));
        } else if (args.length == 2 && args[0].equals("produce")) {
            produce(args[1]);
        } else {
            System.err.println("usage: KafkaInterop consume BOOTSTRAP TOPIC... | produce BOOTSTRAP < lines");
            System.exit(2);
        }
    }

    private static String enc(byte[] b) {
        return b == null ? "-" : B64.encodeToString(b);
    }

    private static byte[] dec(String s) {
        return s.equals("-") ? null : UNB64.decode(s);
    }

    private static void consume(String bootstrap, String[] topics) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("key.deserializer", ByteArrayDeserializer.class.getName());
        p.put("value.deserializer", ByteArrayDeserializer.class.getName());
        p.put("enable.auto.commit", "false");
        p.put("max.poll.records", "5000");
        StringBuilder out = new StringBuilder();
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
            List<TopicPartition> tps = new ArrayList<>();
            Map<String, Integer> counts = new HashMap<>();
            for (String t : topics) {
                List<PartitionInfo> infos = c.partitionsFor(t, java.time.Duration.ofSeconds(30));
                counts.put(t, infos.size());
                for (PartitionInfo i : infos) {
                    tps.add(new TopicPartition(t, i.partition()));
                }
            }
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> ends = new LinkedHashMap<>(c.endOffsets(tps));
            long deadline = System.currentTimeMillis() + 60_000;
            while (!done(c, ends)) {
                if (System.currentTimeMillis() > deadline) {
                    throw new IllegalStateException("timed out reading " + ends);
                }
                for (ConsumerRecord<byte[], byte[]> r : c.poll(java.time.Duration.ofMillis(500))) {
                    int want = r.key() == null ? -1 : BuiltInPartitioner.partitionForKey(r.key(), counts.get(r.topic()));
                    out.append(r.topic()).append('\t').append(r.partition()).append('\t').append(r.offset())
                        .append('\t').append(enc(r.key())).append('\t').append(enc(r.value())).append('\t');
                    boolean first = true;
                    for (Header h : r.headers()) {
                        out.append(first ? "" : ",").append(h.key()).append('=').append(enc(h.value()));
                        first = false;
                    }
                    out.append('\t').append(want).append('\n');
                }
            }
        }
        System.out.print(out);
        System.out.flush();
    }

    private static boolean done(KafkaConsumer<byte[], byte[]> c, Map<TopicPartition, Long> ends) {
        for (Map.Entry<TopicPartition, Long> e : ends.entrySet()) {
            if (c.position(e.getKey()) < e.getValue()) {
                return false;
            }
        }
        return true;
    }

    private static void produce(String bootstrap) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        Map<String, KafkaProducer<byte[], byte[]>> producers = new HashMap<>();
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isEmpty()) {
                continue;
            }
            String[] f = line.split("\t", -1);
            KafkaProducer<byte[], byte[]> producer = producers.computeIfAbsent(f[1], codec -> {
                Properties p = new Properties();
                p.put("bootstrap.servers", bootstrap);
                p.put("key.serializer", ByteArraySerializer.class.getName());
                p.put("value.serializer", ByteArraySerializer.class.getName());
                p.put("compression.type", codec);
                p.put("acks", "all");
                p.put("linger.ms", "20");
                return new KafkaProducer<>(p);
            });
            RecordHeaders headers = new RecordHeaders();
            if (!f[4].isEmpty()) {
                for (String h : f[4].split(",")) {
                    String[] kv = h.split("=", 2);
                    headers.add(kv[0], dec(kv[1]));
                }
            }
            sent.add(producer.send(new ProducerRecord<>(f[0], null, dec(f[2]), dec(f[3]), headers)));
        }
        for (KafkaProducer<byte[], byte[]> producer : producers.values()) {
            producer.flush();
        }
        StringBuilder out = new StringBuilder();
        for (Future<RecordMetadata> f : sent) {
            RecordMetadata m = f.get();
            out.append(m.topic()).append('\t').append(m.partition()).append('\t').append(m.offset()).append('\n');
        }
        for (KafkaProducer<byte[], byte[]> producer : producers.values()) {
            producer.close();
        }
        System.out.print(out);
        System.out.flush();
    }
}
