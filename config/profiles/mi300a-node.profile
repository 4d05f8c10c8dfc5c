# Machine profile: one MI300A node (El Capitan / Tuolumne class): 4 APUs, each 24 Zen 4 cores +
# 228 CUs sharing 128 GiB HBM3 as one NUMA node. KFD never migrates on APUs: placement is a
# NUMA problem (which APU's node holds a page, move_pages). The CPU threads run on APU 0.
# Tags as in mi250x-gcd.profile; [A] = ASSUMED, calibrate (cost-model.md §7).

base = mi300a-node
name = mi300a-node
kind = numa                 # [V] KFD forces best locations to the CPU on APUs (kfd-svm.md §4.7)
xnack = true
n_gpus = 4                  # [S] 4 APUs per node
granule = 2M                # fragment size; move_pages works in 4 KiB pages
migrate_gbps = 64           # [S] xGMI-3 x16 per direction between APUs
migrate_call_usec = 5       # [A] one move_pages call
fault_usec = 30             # [A] GPU first-touch fault per 2 MiB fragment, 5-50 us
epoch_usec = 10000

capacity.node0 = 128G      # [S] HBM3 per APU
capacity.node1 = 128G      # [S] HBM3 per APU
capacity.node2 = 128G      # [S] HBM3 per APU
capacity.node3 = 128G      # [S] HBM3 per APU

home.cpu = node0
dep_fraction.cpu = 0.01     # [A]
dep_fraction.gpu* = 0
bw.cpu.node0 = 200            # [A] CPU sustained HBM bandwidth, 0.1-0.4 TB/s
lat.cpu.node0 = 250           # [A] 0.2-0.4 us
bw.cpu.node1 = 64            # [S] remote APU over xGMI
lat.cpu.node1 = 550           # [A] +0.3 us remote
bw.cpu.node2 = 64            # [S] remote APU over xGMI
lat.cpu.node2 = 550           # [A] +0.3 us remote
bw.cpu.node3 = 64            # [S] remote APU over xGMI
lat.cpu.node3 = 550           # [A] +0.3 us remote
bw.gpu*.node0 = 64          # [S] remote APU over xGMI
lat.gpu*.node0 = 900        # [A] remote
bw.gpu*.node1 = 64          # [S] remote APU over xGMI
lat.gpu*.node1 = 900        # [A] remote
bw.gpu*.node2 = 64          # [S] remote APU over xGMI
lat.gpu*.node2 = 900        # [A] remote
bw.gpu*.node3 = 64          # [S] remote APU over xGMI
lat.gpu*.node3 = 900        # [A] remote
home.gpu0 = node0
home.gpu1 = node1
home.gpu2 = node2
home.gpu3 = node3
bw.gpu*.home = 3600         # [V] BabelStream triad, one APU (SPX)
lat.gpu*.home = 600         # [A]
