{{
    config(
        pre_hook="{{ read_landing_check_files(source('landing', 'transactions')) }}",
    )
}}

with

source as (

    -- on an incremental build, only the files not loaded yet (read_landing skips the others):
    -- a build over the same files adds nothing
    select landed.* from {{ read_landing(source('landing', 'transactions')) }} as landed

),

renamed as (

    select
        -- ids
        cast(source.transaction_id as string) as transaction_id,
        cast(source.customer_id as string) as customer_id,
        cast(source.terminal_id as string) as terminal_id,

        -- amounts
        cast(source.tx_amount as string) as tx_amount,

        -- timestamps
        cast(source.tx_datetime as string) as tx_datetime,

        -- load metadata
        cast(source._source_file as string) as _source_file,
        {{ try_cast('cast(source.tx_date as string)', 'date') }} as _landed_date,
        {{ read_landing_loaded_at() }} as _loaded_at

    from source

)

select * from renamed
