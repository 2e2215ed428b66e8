// Optional peer timing: RTNeural's float GRU(U) + Dense(C) (+ softmax) per step against rnn2c's
// int8 C of a GRU(U) + Dense(C, softmax) export, interleaved in one process, thread CPU time.
// Built and run by benchmarks/rtneural_peer.py, which needs a local RTNeural checkout (and
// Eigen): nothing here runs in CI or in the test suite. Only RTNeural's public API is used.
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include <RTNeural/RTNeural.h>

extern "C" {
#include "model.h"
}

#ifndef UNITS
#define UNITS 32
#endif
constexpr int F = MODEL_INPUT_SIZE;
constexpr int C = MODEL_OUTPUT_SIZE;

static double thread_ns()
{
    timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

int main(int argc, char** argv)
{
    if(argc != 6)
    {
        std::fprintf(stderr, "usage: %s X_INT8.bin X_FLOAT.bin N T_STEPS ROUNDS\n", argv[0]);
        return 2;
    }
    const int n = std::atoi(argv[3]), T = std::atoi(argv[4]), rounds = std::atoi(argv[5]);
    std::vector<int8_t> xq((size_t)n * T * F);
    std::vector<float> xf((size_t)n * T * F);
    FILE* f = std::fopen(argv[1], "rb");
    if(!f || std::fread(xq.data(), 1, xq.size(), f) != xq.size())
        return 1;
    std::fclose(f);
    f = std::fopen(argv[2], "rb");
    if(!f || std::fread(xf.data(), sizeof(float), xf.size(), f) != xf.size())
        return 1;
    std::fclose(f);

    // RTNeural: the same shapes with random weights (the timing does not depend on them)
    RTNeural::ModelT<float, F, C, RTNeural::GRULayerT<float, F, UNITS>,
        RTNeural::DenseT<float, UNITS, C>>
        plain;
    RTNeural::ModelT<float, F, C, RTNeural::GRULayerT<float, F, UNITS>,
        RTNeural::DenseT<float, UNITS, C>, RTNeural::SoftmaxActivationT<float, C>>
        soft;
    std::mt19937 rng(0);
    std::normal_distribution<float> nd(0.0f, 0.3f);
    auto mat = [&](int rows, int cols) {
        std::vector<std::vector<float>> m(rows, std::vector<float>(cols));
        for(auto& r : m)
            for(auto& x : r)
                x = nd(rng);
        return m;
    };
    const auto w = mat(F, 3 * UNITS), u = mat(UNITS, 3 * UNITS), b = mat(2, 3 * UNITS);
    const auto d = mat(C, UNITS);
    std::vector<float> db(C, 0.1f);
    for(auto* gru : { &plain.get<0>(), &soft.get<0>() })
    {
        gru->setWVals(w);
        gru->setUVals(u);
        gru->setBVals(b);
    }
    plain.get<1>().setWeights(d);
    plain.get<1>().setBias(db.data());
    soft.get<1>().setWeights(d);
    soft.get<1>().setBias(db.data());

    // RTNeural's Eigen backend maps the input with RTNEURAL_DEFAULT_ALIGNMENT: each step's
    // features are copied into an aligned buffer first (inside the timed loop)
    alignas(64) float in[F + 16] = {};
    std::vector<double> t_c, t_plain, t_soft;
    uint32_t hash = 0;
    float sink = 0.0f;
    model_state_t s;
    int8_t y[C];
    for(int round = 0; round <= rounds; ++round) // round 0: warm-up
    {
        double t0 = thread_ns();
        for(int i = 0; i < n; ++i)
        {
            model_reset(&s);
            for(int t = 0; t < T; ++t)
            {
                model_step(&s, &xq[((size_t)i * T + t) * F], y);
                hash = hash * 31u + (uint8_t)y[0];
            }
        }
        double t1 = thread_ns();
        for(int i = 0; i < n; ++i)
        {
            plain.reset();
            for(int t = 0; t < T; ++t)
            {
                std::copy_n(&xf[((size_t)i * T + t) * F], F, in);
                sink += plain.forward(in);
            }
        }
        double t2 = thread_ns();
        for(int i = 0; i < n; ++i)
        {
            soft.reset();
            for(int t = 0; t < T; ++t)
            {
                std::copy_n(&xf[((size_t)i * T + t) * F], F, in);
                sink += soft.forward(in);
            }
        }
        double t3 = thread_ns();
        if(round > 0)
        {
            t_c.push_back((t1 - t0) / (n * T));
            t_plain.push_back((t2 - t1) / (n * T));
            t_soft.push_back((t3 - t2) / (n * T));
        }
    }
    auto row = [](const char* name, const std::vector<double>& v) {
        std::printf("%-40s %7.1f ns/step [%.1f-%.1f]\n", name, median(v),
            *std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end()));
    };
    row("rnn2c int8 C, GRU + Dense + softmax", t_c);
    row("RTNeural float, GRU + Dense", t_plain);
    row("RTNeural float, GRU + Dense + softmax", t_soft);
    std::printf("(checksums %08x %g)\n", hash, (double)sink);
    return 0;
}
