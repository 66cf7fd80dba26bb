//! The standalone server owns its data directory.

use symbiose_tests::TestServer;

#[tokio::test]
async fn a_second_server_on_the_same_data_directory_is_refused() {
    let first = TestServer::start().await.expect("first server");
    let data_dir = first.config.data_dir.clone();
    let second = TestServer::start_with(|config| config.data_dir = data_dir.clone()).await;
    let error = second.expect_err("the directory is taken");
    assert!(format!("{error:#}").contains("in use by another process"), "{error:#}");

    first.stop().await.expect("a clean stop");
    let third = TestServer::start_with(|config| config.data_dir = data_dir)
        .await
        .expect("the directory is free again");
    third.stop().await.expect("a clean stop");
}
