//! Generates the v3 API's messages and services from Keel's own `.proto` definitions of etcd's
//! wire protocol (`proto/`): prost messages, tonic services and clients, and pbjson's serde
//! impls for the JSON gateway (proto field names, int64 as strings, bytes as base64).

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "proto/mvccpb/kv.proto",
    "proto/authpb/auth.proto",
    "proto/etcdserverpb/rpc.proto",
    "proto/v3lockpb/v3lock.proto",
    "proto/v3electionpb/v3election.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    if std::env::var_os("PROTOC").is_none() && which_protoc().is_none() {
        return Err("protoc not found: run ./scripts/deps (installs Debian's protobuf-compiler) or set PROTOC".into());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptors = out.join("keel_descriptors.bin");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .file_descriptor_set_path(&descriptors)
        .compile_protos(PROTOS, &["proto"])?;
    pbjson_build::Builder::new()
        .register_descriptors(&std::fs::read(&descriptors)?)?
        .preserve_proto_field_names()
        .build(&[".mvccpb", ".authpb", ".etcdserverpb", ".v3lockpb", ".v3electionpb"])?;
    Ok(())
}

/// `protoc` on the PATH, if any.
fn which_protoc() -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| PathBuf::from(dir).join("protoc")).find(|p| p.is_file())
}
