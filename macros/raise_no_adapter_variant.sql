{#-
    raise_no_adapter_variant(macro_name): the compile error of a dispatched macro's default__
    variant, on an adapter the macro has no variant for: names the macro to add and its file
    (one macro per file, macros/<macro_name>.sql). Used by read_landing and read_serving_log,
    which have no portable implementation.
-#}
{% macro raise_no_adapter_variant(macro_name) %}
    {{ exceptions.raise_compiler_error(
        macro_name ~ " has no implementation for adapter '" ~ adapter.type()
        ~ "'; add a " ~ adapter.type() ~ "__" ~ macro_name ~ " macro (macros/" ~ macro_name ~ ".sql)"
    ) }}
{% endmacro %}
