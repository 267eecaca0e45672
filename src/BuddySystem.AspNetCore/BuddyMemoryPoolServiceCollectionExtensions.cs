using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace BuddySystem.AspNetCore;

/// <summary>Registers <see cref="BuddyMemoryPoolFactory"/> as Kestrel's memory pool factory.</summary>
public static class BuddyMemoryPoolServiceCollectionExtensions
{
    /// <summary>
    /// Makes Kestrel take its connection buffers from a BuddySystem heap: replaces every registered
    /// <see cref="IMemoryPoolFactory{T}"/> of bytes with one <see cref="BuddyMemoryPoolFactory"/> singleton.
    /// </summary>
    /// <param name="services">The host's services; call after Kestrel is added (as <c>WebApplication.CreateBuilder</c> already did).</param>
    /// <param name="configure">Adjusts heap size and pool settings; optional.</param>
    /// <returns><paramref name="services"/>, for chaining.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="services"/> is null.</exception>
    public static IServiceCollection AddBuddyMemoryPool(this IServiceCollection services, Action<BuddyMemoryPoolFactoryOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        OptionsBuilder<BuddyMemoryPoolFactoryOptions> options = services.AddOptions<BuddyMemoryPoolFactoryOptions>();
        if (configure != null)
        {
            options.Configure(configure);
        }

        services.TryAddSingleton<BuddyMemoryPoolFactory>();

        // Kestrel registers its pinned-block factory with AddSingleton (not TryAdd), so remove it rather than add beside it.
        services.RemoveAll<IMemoryPoolFactory<byte>>();
        services.AddSingleton<IMemoryPoolFactory<byte>>(provider => provider.GetRequiredService<BuddyMemoryPoolFactory>());
        return services;
    }
}
