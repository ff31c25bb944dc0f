using System.Reflection;
using ResNet.Runtime;
using ResNet.Runtime.Weights;
using Xunit;

namespace ResNet.Tests;

/// <summary>
/// Under tiered JIT every method starts as tier-0 code and is recompiled after ~30 calls (twice with PGO: an
/// instrumented tier, then tier 1) by a background thread. For the methods every pass runs, that happened around a
/// JIT app's passes 30 and 60, on a core the pass needed: a library user saw 30–130 ms of extra time spread over
/// ~10 passes, long after the first. They are compiled optimized at their first call instead; these tests hold the rule
/// (NativeAOT ignores the attribute).
/// </summary>
public class TieredCompilationTests
{
    private const BindingFlags Any = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    public static TheoryData<Type, string> PassMethods() => new()
    {
        { typeof(GeneratedNetwork), "Run" },
        { typeof(GeneratedNetwork), "BeginPacking" },
        { typeof(GeneratedNetwork), "PackRows" },
        { typeof(GeneratedNetwork), "RunLayers" },
        { typeof(GeneratedNetwork), "RunLayerCore" },
        { typeof(GeneratedNetwork), "RunKernel" },
        { typeof(GeneratedNetwork), "RunWinograd" },
        { typeof(GeneratedNetwork), "Dispatch" },
        { typeof(GeneratedNetwork), "ZeroHalo" },
        { typeof(GeneratedNetwork), "Unpack" },
        { typeof(GeneratedNetwork), "RunPrefix" },
        { typeof(GeneratedNetwork), "RunPrefixImages" },
        { typeof(GeneratedNetwork), "PrefixImages" },
        { typeof(GeneratedNetwork), "StreamInputRows" },
        { typeof(GeneratedNetwork), "RunReadyBand" },
        { typeof(GeneratedNetwork), "RunStreamed" },
        { typeof(WorkerPool), "Run" },
        { typeof(WorkerPool), "Enter" },
        { typeof(WorkerPool), "RunCore" },
        { typeof(WorkerPool), "RunShare" },
        { typeof(WorkerPool).GetNestedType("Worker", BindingFlags.NonPublic)!, "Loop" },
    };

    [Theory]
    [MemberData(nameof(PassMethods))]
    public void WhatEveryPassRunsIsOptimizedFromItsFirstCall(Type type, string name)
    {
        var methods = type.GetMethods(Any).Where(m => m.Name == name).ToList();
        Assert.NotEmpty(methods);
        // Run(ReadOnlySpan<float>) allocates its output and is not a pass of the library's steady state.
        foreach (var m in methods.Where(m => m.ReturnType != typeof(float[])))
            Assert.True(m.MethodImplementationFlags.HasFlag(MethodImplAttributes.AggressiveOptimization),
                $"{type.Name}.{m} is left to tiered compilation");
    }

    /// <summary>Loading's loops over every weight: left to tiering they ran as tier-0 code until on-stack replacement.</summary>
    public static TheoryData<Type, string> LoadingLoops() => new()
    {
        { typeof(Packing), "Conv" },
        { typeof(Packing), "Linear" },
        { typeof(Packing), "Winograd" },
        { typeof(Packing), "Transform" },
        { typeof(Packing), "TransformBlock" },
        { typeof(Packing), "RowWinograd" },
        { typeof(Packing), "RowWinogradSplit" },
        { typeof(Folding), "Fold" },
        { typeof(Folding), "ScaleRow" },
        { typeof(FloatFormats), "Convert" },
        { typeof(FloatFormats), "HalfToSingle" },
        { typeof(FloatFormats), "SwapBytes" },
        { typeof(HugePages), "Prefault" },
    };

    [Theory]
    [MemberData(nameof(LoadingLoops))]
    public void LoadingsLoopsAreOptimizedFromTheirFirstCall(Type type, string name)
    {
        var methods = type.GetMethods(Any).Where(m => m.Name == name).ToList();
        Assert.NotEmpty(methods);
        // The one with the loop: Fold's and Prefault's other overloads only pass on to it.
        Assert.Contains(methods, m => m.MethodImplementationFlags.HasFlag(MethodImplAttributes.AggressiveOptimization));
    }

    [Fact]
    public void EveryGeneratedLayerMethodIsOptimizedFromItsFirstCall()
    {
        var layers = typeof(ResNet18).GetMethods(Any)
            .Where(m => m.Name.EndsWith("_Avx512", StringComparison.Ordinal) || m.Name.EndsWith("_Avx2", StringComparison.Ordinal)
                        || m.Name.EndsWith("_Portable", StringComparison.Ordinal))
            .Where(m => m.GetParameters() is [{ Name: "n" }])
            .ToList();
        // One method per fused layer and instruction set.
        Assert.Equal(3 * ResNet18.Network.Layers.Count, layers.Count);
        Assert.All(layers, m => Assert.True(m.MethodImplementationFlags.HasFlag(MethodImplAttributes.AggressiveOptimization), m.Name));
    }
}
