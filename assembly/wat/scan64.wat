;; scan64: a memory64 workload (AssemblyScript cannot emit memory64, so it is written in WAT).
;;
;;   run(size, stride, seed) -> i64
;;     grows the 64-bit memory to `size` bytes, writes one i64 every `stride` bytes
;;     (x = mix(offset ^ seed)), then reads them all back and returns their wrapping sum.
;;   expected(size, stride, seed) -> i64
;;     the same sum computed without memory, so a run's checksum can be checked at any size.
;;
;; With size = 6 GiB the program touches more than 4 GiB of virtual memory: every address past
;; 2^32 goes through farmem's 64-bit translation. `stride` is a multiple of 8 (aligned i64s).
(module
  (memory (export "memory") i64 1 262144)

  ;; splitmix64's finalizer: a cheap, well-mixed value per offset
  (func $mix (param $x i64) (result i64)
    (local.set $x (i64.mul (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 30))) (i64.const 0xbf58476d1ce4e5b9)))
    (local.set $x (i64.mul (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 27))) (i64.const 0x94d049bb133111eb)))
    (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 31))))

  (func (export "run") (param $size i64) (param $stride i64) (param $seed i64) (result i64)
    (local $at i64) (local $sum i64) (local $pages i64)
    ;; grow to ceil(size / 64 KiB) pages
    (local.set $pages (i64.shr_u (i64.add (local.get $size) (i64.const 65535)) (i64.const 16)))
    (if (i64.gt_u (local.get $pages) (memory.size))
      (then (if (i64.eq (memory.grow (i64.sub (local.get $pages) (memory.size))) (i64.const -1))
        (then (unreachable)))))
    (block $done
      (loop $write
        (br_if $done (i64.gt_u (i64.add (local.get $at) (i64.const 8)) (local.get $size)))
        (i64.store (local.get $at) (call $mix (i64.xor (local.get $at) (local.get $seed))))
        (local.set $at (i64.add (local.get $at) (local.get $stride)))
        (br $write)))
    (local.set $at (i64.const 0))
    (block $done
      (loop $read
        (br_if $done (i64.gt_u (i64.add (local.get $at) (i64.const 8)) (local.get $size)))
        (local.set $sum (i64.add (local.get $sum) (i64.load (local.get $at))))
        (local.set $at (i64.add (local.get $at) (local.get $stride)))
        (br $read)))
    (local.get $sum))

  (func (export "expected") (param $size i64) (param $stride i64) (param $seed i64) (result i64)
    (local $at i64) (local $sum i64)
    (block $done
      (loop $next
        (br_if $done (i64.gt_u (i64.add (local.get $at) (i64.const 8)) (local.get $size)))
        (local.set $sum (i64.add (local.get $sum) (call $mix (i64.xor (local.get $at) (local.get $seed)))))
        (local.set $at (i64.add (local.get $at) (local.get $stride)))
        (br $next)))
    (local.get $sum))
)
