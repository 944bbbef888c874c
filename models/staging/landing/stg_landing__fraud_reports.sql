{{
    config(
        pre_hook="{{ read_landing_check_files(source('landing', 'fraud_reports')) }}",
    )
}}

with

source as (

    -- on an incremental build, only the files not loaded yet (read_landing skips the others):
    -- a build over the same files adds nothing
    select landed.* from {{ read_landing(source('landing', 'fraud_reports')) }} as landed

),

renamed as (

    select
        -- ids
        cast(source.transaction_id as string) as transaction_id,

        -- labels
        cast(source.fraud_scenario as string) as fraud_scenario,

        -- timestamps
        cast(source.reported_at as string) as reported_at,

        -- load metadata
        cast(source._source_file as string) as _source_file,
        {{ try_cast('cast(source.report_date as string)', 'date') }} as _landed_date,
        {{ read_landing_loaded_at() }} as _loaded_at

    from source

)

select * from renamed
