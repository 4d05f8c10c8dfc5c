# Machine profile: one Frontier node (HPE Cray EX235a) seen from one job: 1x EPYC 7A53 "Trento",
# 4x MI250X = 8 GCDs, VRAM registered as MEMORY_DEVICE_COHERENT. Load with
# `spmsim --profile config/profiles/mi250x-gcd.profile`; override any line with --set KEY=VALUE.
# Tags (shared/reference/cost-model.md): [V] read in a primary source, [S] secondary,
# [D] derived, [A] ASSUMED - not measured, calibrate before quoting results (cost-model.md §7).
# Units: bytes (K/M/G = 1024, KB/MB/GB = 1000), GB/s, ns, usec.

base = mi250x-gcd
name = mi250x-gcd
kind = device-coherent      # [V] amdgpu registers VRAM as DEVICE_COHERENT when connected_to_cpu
xnack = true                # [V] HSA_XNACK=1: GPU faults migrate to VRAM (OLCF guide)
n_gpus = 8                  # [V] 8 GCDs per node
granule = 2M                # [V] svm_default_granularity = 9 (2 MiB)
migrate_gbps = 25           # [A] SDMA copy per direction; ceiling 32 (amd-lab-notes), range 20-32
migrate_call_usec = 10      # [A] ioctl + migrate_vma setup per call
fault_usec = 30             # [A] fixed GPU fault cost, NVIDIA analogues 10-50 us
epoch_usec = 10000          # simulator epoch (10 ms)

capacity.ram = 512GB        # [V] 512 GB DDR4 per node

capacity.gpu0 = 64GB       # [V] 64 GB HBM2e per GCD
capacity.gpu1 = 64GB       # [V] 64 GB HBM2e per GCD
capacity.gpu2 = 64GB       # [V] 64 GB HBM2e per GCD
capacity.gpu3 = 64GB       # [V] 64 GB HBM2e per GCD
capacity.gpu4 = 64GB       # [V] 64 GB HBM2e per GCD
capacity.gpu5 = 64GB       # [V] 64 GB HBM2e per GCD
capacity.gpu6 = 64GB       # [V] 64 GB HBM2e per GCD
capacity.gpu7 = 64GB       # [V] 64 GB HBM2e per GCD

home.cpu = ram
dep_fraction.cpu = 0.01     # [A] share of CPU accesses that are dependent cache misses
dep_fraction.gpu* = 0       # GPU kernels are bandwidth-bound: no latency term
bw.cpu.ram = 41             # [A] DDR4 sustained per NUMA domain (peak 51.2 [D])
lat.cpu.ram = 100           # [A] CPU load from local DDR4, 90-130 ns
bw.cpu.gpu0 = 36            # [V] Infinity Fabric 36 GB/s per direction per GCD
lat.cpu.gpu0 = 1500         # [A] CPU load from HBM over IF, 0.8-2 us
bw.cpu.gpu1 = 36            # [V] Infinity Fabric 36 GB/s per direction per GCD
lat.cpu.gpu1 = 1500         # [A] CPU load from HBM over IF, 0.8-2 us
bw.cpu.gpu2 = 36            # [V] Infinity Fabric 36 GB/s per direction per GCD
lat.cpu.gpu2 = 1500         # [A] CPU load from HBM over IF, 0.8-2 us
bw.cpu.gpu3 = 36            # [V] Infinity Fabric 36 GB/s per direction per GCD
lat.cpu.gpu3 = 1500         # [A] CPU load from HBM over IF, 0.8-2 us
bw.cpu.gpu4 = 36            # [V] Infinity Fabric 36 GB/s per direction per GCD
lat.cpu.gpu4 = 1500         # [A] CPU load from HBM over IF, 0.8-2 us
bw.cpu.gpu5 = 36            # [V] Infinity Fabric 36 GB/s per direction per GCD
lat.cpu.gpu5 = 1500         # [A] CPU load from HBM over IF, 0.8-2 us
bw.cpu.gpu6 = 36            # [V] Infinity Fabric 36 GB/s per direction per GCD
lat.cpu.gpu6 = 1500         # [A] CPU load from HBM over IF, 0.8-2 us
bw.cpu.gpu7 = 36            # [V] Infinity Fabric 36 GB/s per direction per GCD
lat.cpu.gpu7 = 1500         # [A] CPU load from HBM over IF, 0.8-2 us
bw.gpu*.ram = 36            # [V] zero-copy GPU read of DDR over IF
lat.gpu*.ram = 1500         # [A] GPU load from host DDR, 1-3 us
bw.gpu*.gpu0 = 50           # [V] GCD-GCD across packages, 50-100 GB/s
lat.gpu*.gpu0 = 1500        # [A] peer GCD load
bw.gpu*.gpu1 = 50           # [V] GCD-GCD across packages, 50-100 GB/s
lat.gpu*.gpu1 = 1500        # [A] peer GCD load
bw.gpu*.gpu2 = 50           # [V] GCD-GCD across packages, 50-100 GB/s
lat.gpu*.gpu2 = 1500        # [A] peer GCD load
bw.gpu*.gpu3 = 50           # [V] GCD-GCD across packages, 50-100 GB/s
lat.gpu*.gpu3 = 1500        # [A] peer GCD load
bw.gpu*.gpu4 = 50           # [V] GCD-GCD across packages, 50-100 GB/s
lat.gpu*.gpu4 = 1500        # [A] peer GCD load
bw.gpu*.gpu5 = 50           # [V] GCD-GCD across packages, 50-100 GB/s
lat.gpu*.gpu5 = 1500        # [A] peer GCD load
bw.gpu*.gpu6 = 50           # [V] GCD-GCD across packages, 50-100 GB/s
lat.gpu*.gpu6 = 1500        # [A] peer GCD load
bw.gpu*.gpu7 = 50           # [V] GCD-GCD across packages, 50-100 GB/s
lat.gpu*.gpu7 = 1500        # [A] peer GCD load
bw.gpu0.gpu1 = 200         # [V] GCD-GCD in one package (4 xGMI links)
bw.gpu1.gpu0 = 200         # [V]
bw.gpu2.gpu3 = 200         # [V] GCD-GCD in one package (4 xGMI links)
bw.gpu3.gpu2 = 200         # [V]
bw.gpu4.gpu5 = 200         # [V] GCD-GCD in one package (4 xGMI links)
bw.gpu5.gpu4 = 200         # [V]
bw.gpu6.gpu7 = 200         # [V] GCD-GCD in one package (4 xGMI links)
bw.gpu7.gpu6 = 200         # [V]
bw.gpu*.home = 1300         # [A] sustained HBM2e, 80 % of the 1.6 TB/s peak [V]
lat.gpu*.home = 600         # [A] GPU load from local HBM, 0.4-0.9 us
