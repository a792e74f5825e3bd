package dev.asyncarch.registry;

import io.apicurio.common.apps.config.DynamicConfigPropertyList;
import java.util.List;
import javax.enterprise.context.ApplicationScoped;
import javax.enterprise.inject.Produces;

/**
 * The bean that Apicurio's config-index Quarkus extension would build at augmentation time.
 * That extension's deployment module is not on Maven Central, so the registry runs without
 * dynamic (runtime-editable) configuration properties: none are listed.
 */
public class DynamicConfigProperties {
    @Produces
    @ApplicationScoped
    DynamicConfigPropertyList none() {
        return new DynamicConfigPropertyList(List.of());
    }
}
