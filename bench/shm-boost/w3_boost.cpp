// Workload W3 (DESIGN.md section 5) on N processes sharing one Boost.Interprocess managed_shared_memory: the peer of
// `buddy shm bench`. Boost's segment manager is a best-fit tree (rbtree_best_fit) behind a process-shared mutex that is
// not robust: a process killed while holding it blocks the others for good. Built by `buddy shm bench` with
//   g++ -O2 -std=c++17 w3_boost.cpp -o w3_boost -lpthread -lrt
// Usage: w3_boost PROCESSES OPERATIONS. Each child opens the segment, waits at a pipe barrier, runs W3 with the seed
// 0x5EED + its index, and exits with its failed allocations (capped at 255). Prints one line:
//   processes=N operations=OPS wall_ns=NS failed=F
#include <boost/interprocess/managed_shared_memory.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace bip = boost::interprocess;

namespace {

struct SplitMix64 {
    uint64_t state;
    uint64_t next() {
        state += 0x9E3779B97F4A7C15ULL;
        uint64_t z = state;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }
};

// W3 exactly as src/BuddySystem.Cli/Bench/W3Stream.cs draws it; returns the failed allocations.
long run_w3(bip::managed_shared_memory& segment, uint64_t seed, long operations) {
    const size_t live_cap = 10000;
    SplitMix64 random{seed};
    std::vector<void*> live;
    live.reserve(live_cap);
    long failed = 0;
    for (long op = 0; op < operations; op++) {
        bool allocate = live.empty() || (live.size() < live_cap && random.next() % 2 == 0);
        if (allocate) {
            int exponent = 3 + static_cast<int>(random.next() % 13);
            uint64_t power = 1ULL << exponent;
            uint64_t size = power + random.next() % power;
            void* block = segment.allocate(size, std::nothrow);
            failed += block == nullptr ? 1 : 0;
            live.push_back(block); // as the C# bench does, a failed allocation keeps its place (a null, whose free is skipped)
        } else {
            size_t index = random.next() % live.size();
            if (live[index] != nullptr) {
                segment.deallocate(live[index]);
            }
            live[index] = live.back();
            live.pop_back();
        }
    }
    for (void* block : live) {
        if (block != nullptr) {
            segment.deallocate(block);
        }
    }
    return failed;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: w3_boost PROCESSES OPERATIONS\n");
        return 2;
    }
    int processes = std::atoi(argv[1]);
    long operations = std::atol(argv[2]);
    if (processes < 1 || operations < 1) {
        std::fprintf(stderr, "w3_boost: PROCESSES and OPERATIONS must be positive\n");
        return 2;
    }
    std::string name = "buddy-w3-boost-" + std::to_string(getpid());
    // 32 MiB per process (DESIGN.md W5: one W3 live set needs up to ~20 MiB) plus the segment manager's headers.
    size_t bytes = (size_t{32} << 20) * static_cast<size_t>(processes) + (size_t{1} << 20);
    bip::shared_memory_object::remove(name.c_str());
    bip::managed_shared_memory segment(bip::create_only, name.c_str(), bytes);
    int ready[2], go[2];
    if (pipe(ready) != 0 || pipe(go) != 0) {
        std::perror("w3_boost: pipe");
        return 1;
    }
    std::vector<pid_t> children;
    for (int i = 0; i < processes; i++) {
        pid_t child = fork();
        if (child == 0) {
            bip::managed_shared_memory mine(bip::open_only, name.c_str());
            char byte = 'r';
            if (write(ready[1], &byte, 1) != 1 || read(go[0], &byte, 1) != 1) {
                _exit(255);
            }
            long failed = run_w3(mine, 0x5EED + static_cast<uint64_t>(i), operations);
            _exit(failed > 254 ? 254 : static_cast<int>(failed));
        }
        children.push_back(child);
    }
    for (int i = 0; i < processes; i++) {
        char byte;
        if (read(ready[0], &byte, 1) != 1) {
            std::perror("w3_boost: read");
            return 1;
        }
    }
    auto start = std::chrono::steady_clock::now();
    std::string bytes_go(static_cast<size_t>(processes), 'g');
    if (write(go[1], bytes_go.data(), bytes_go.size()) != static_cast<ssize_t>(bytes_go.size())) {
        std::perror("w3_boost: write");
        return 1;
    }
    long failed = 0;
    for (pid_t child : children) {
        int status = 0;
        waitpid(child, &status, 0);
        failed += WIFEXITED(status) ? WEXITSTATUS(status) : 255;
    }
    auto wall = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
    bip::shared_memory_object::remove(name.c_str());
    std::printf("processes=%d operations=%ld wall_ns=%lld failed=%ld\n", processes, operations, static_cast<long long>(wall), failed);
    return 0;
}
